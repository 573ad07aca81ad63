// What both peers share with Roomcast's outside: GET /readyz and a JSON
// "listening" line on stdout carrying the port, so one launcher starts all three.
import { createServer, type Server } from "node:http";

export function createHttpServer(): Server {
  return createServer((req, res) => {
    const ok = req.url === "/readyz" || req.url === "/healthz";
    res.writeHead(ok ? 200 : 404, { "content-type": "text/plain" }).end(ok ? "ok" : "not found");
  });
}

export function listen(server: Server, name: string): void {
  const port = Number(process.env["PORT"] ?? "0");
  server.listen(port, "127.0.0.1", () => {
    const address = server.address();
    const bound = address !== null && typeof address === "object" ? address.port : port;
    process.stdout.write(`${JSON.stringify({ msg: "listening", server: name, port: bound })}\n`);
  });
  const stop = (): void => {
    server.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
