// Fresh loopback source addresses for every run: a client socket bound to an
// address keeps its port in TIME_WAIT after the run, and one address has only
// ~28k ephemeral ports, so runs never share addresses and big runs use several.
let counter = 0;

/** `count` addresses 127.1.x.y (never 127.0.0.1), distinct for the life of the process. */
export function nextSourceAddresses(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    counter++;
    out.push(`127.1.${Math.floor(counter / 250) % 250}.${(counter % 250) + 1}`);
  }
  return out;
}
