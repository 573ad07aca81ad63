// A real OTLP trace receiver for tests, on a free loopback port: gRPC
// (opentelemetry.proto.collector.trace.v1.TraceService/Export, served by
// @grpc/grpc-js) or HTTP (POST /v1/traces, protobuf or JSON). It decodes
// what the node's exporter sends (the protobuf wire format read field by
// field with @bufbuild/protobuf's BinaryReader) and keeps every span.
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  /** "" for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  /** What a node's OTEL_EXPORTER_OTLP_ENDPOINT should be. */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** Export requests seen, by content type ("grpc" for gRPC). */
  readonly requests: string[];
  close(): Promise<void>;
}

const EXPORT_PATH = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

export async function startOtlpReceiver(transport: "grpc" | "http"): Promise<OtlpReceiver> {
  return transport === "grpc" ? startGrpc() : startHttp();
}

async function startGrpc(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: string[] = [];
  const server = new Server();
  const identity = (b: Buffer) => b;
  server.addService(
    {
      Export: {
        path: EXPORT_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        // An empty ExportTraceServiceResponse is zero bytes.
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: identity,
      },
    },
    {
      Export: (
        call: { request: Buffer },
        callback: (err: Error | null, response: Buffer) => void,
      ) => {
        requests.push("grpc");
        spans.push(...decodeRequest(call.request));
        callback(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
      err === null ? resolve(p) : reject(err),
    ),
  );
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      }),
  };
}

async function startHttp(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: string[] = [];
  const server: HttpServer = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks);
      const type = req.headers["content-type"] ?? "";
      requests.push(type);
      if (type.startsWith("application/json")) {
        spans.push(...decodeJson(JSON.parse(body.toString("utf8")) as JsonRequest));
        res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
      } else {
        spans.push(...decodeRequest(body));
        res.writeHead(200, { "Content-Type": "application/x-protobuf" }).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---- protobuf (opentelemetry/proto/trace/v1/trace.proto field numbers) ------

function fields(bytes: Uint8Array, each: (field: number, r: BinaryReader, wt: WireType) => void) {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    each(field, r, wt);
  }
}

function decodeRequest(bytes: Uint8Array): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  // ExportTraceServiceRequest.resource_spans = 1
  fields(bytes, (f, r, wt) => {
    if (f !== 1) return void r.skip(wt);
    let service = "";
    const scopeSpans: Uint8Array[] = [];
    // ResourceSpans: resource = 1, scope_spans = 2
    fields(r.bytes(), (f2, r2, wt2) => {
      if (f2 === 1) {
        // Resource.attributes = 1
        fields(r2.bytes(), (f3, r3, wt3) => {
          if (f3 !== 1) return void r3.skip(wt3);
          const [k, v] = keyValue(r3.bytes());
          if (k === "service.name") service = String(v);
        });
      } else if (f2 === 2) {
        scopeSpans.push(r2.bytes());
      } else {
        r2.skip(wt2);
      }
    });
    for (const scope of scopeSpans) {
      // ScopeSpans.spans = 2
      fields(scope, (f4, r4, wt4) => {
        if (f4 !== 2) return void r4.skip(wt4);
        out.push(decodeSpan(service, r4.bytes()));
      });
    }
  });
  return out;
}

function decodeSpan(service: string, bytes: Uint8Array): ReceivedSpan {
  let traceId = "";
  let spanId = "";
  let parentSpanId = "";
  let name = "";
  let kind = 0;
  const attributes: Record<string, string | number | boolean> = {};
  fields(bytes, (f, r, wt) => {
    switch (f) {
      case 1:
        traceId = hex(r.bytes());
        return;
      case 2:
        spanId = hex(r.bytes());
        return;
      case 4:
        parentSpanId = hex(r.bytes());
        return;
      case 5:
        name = r.string();
        return;
      case 6:
        kind = r.int32();
        return;
      case 9: {
        const [k, v] = keyValue(r.bytes());
        attributes[k] = v;
        return;
      }
      default:
        r.skip(wt);
    }
  });
  return { service, traceId, spanId, parentSpanId, name, kind, attributes };
}

function keyValue(bytes: Uint8Array): [string, string | number | boolean] {
  let key = "";
  let value: string | number | boolean = "";
  fields(bytes, (f, r, wt) => {
    if (f === 1) key = r.string();
    else if (f === 2) {
      // AnyValue: string_value = 1, bool_value = 2, int_value = 3, double_value = 4
      fields(r.bytes(), (f2, r2, wt2) => {
        if (f2 === 1) value = r2.string();
        else if (f2 === 2) value = r2.bool();
        else if (f2 === 3) value = Number(r2.int64());
        else if (f2 === 4) value = r2.double();
        else r2.skip(wt2);
      });
    } else r.skip(wt);
  });
  return [key, value];
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

// ---- JSON (OTLP/HTTP JSON: ids as hex strings) ------------------------------

interface JsonKeyValue {
  key: string;
  value: {
    stringValue?: string;
    boolValue?: boolean;
    intValue?: string | number;
    doubleValue?: number;
  };
}
interface JsonRequest {
  resourceSpans?: {
    resource?: { attributes?: JsonKeyValue[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind?: number;
        attributes?: JsonKeyValue[];
      }[];
    }[];
  }[];
}

function jsonValue(v: JsonKeyValue["value"]): string | number | boolean {
  return (
    v.stringValue ??
    v.boolValue ??
    (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? ""))
  );
}

function decodeJson(body: JsonRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const serviceAttr = rs.resource?.attributes?.find((a) => a.key === "service.name");
    const service = serviceAttr === undefined ? "" : String(jsonValue(serviceAttr.value));
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const attributes: Record<string, string | number | boolean> = {};
        for (const a of s.attributes ?? []) attributes[a.key] = jsonValue(a.value);
        out.push({
          service,
          traceId: s.traceId.toLowerCase(),
          spanId: s.spanId.toLowerCase(),
          parentSpanId: (s.parentSpanId ?? "").toLowerCase(),
          name: s.name,
          kind: s.kind ?? 0,
          attributes,
        });
      }
    }
  }
  return out;
}
