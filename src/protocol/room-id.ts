// Room id rules from the protocol: 1-128 characters of A-Z a-z 0-9 _ - . : @.
const ROOM_ID = /^[A-Za-z0-9_\-.:@]{1,128}$/;

export function isValidRoomId(id: string): boolean {
  return ROOM_ID.test(id);
}
