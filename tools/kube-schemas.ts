// Writes the JSON schemas kubeconform validates the chart against, offline,
// from sources the Go module proxy serves (deploy/check.sh downloads them):
// - Kubernetes' own OpenAPI (api/openapi-spec/swagger.json of the
//   k8s.io/kubernetes module) → one standalone, strict schema per kind;
// - the prometheus-operator CRDs (jsonnet/prometheus-operator/*-crd.json of
//   its module) → one per kind and version.
// Files are named as kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json`
// template expects (deployment-apps-v1.json, service-v1.json,
// servicemonitor-monitoring-v1.json). "Strict" means what kubeconform's own
// strict schemas mean: an object with declared properties accepts no others,
// so a misspelt field fails. This does what kubeconform's openapi2jsonschema.py
// does, without Python or a download of pre-built schemas.
//
// node dist/tools/kube-schemas.js OUT_DIR SWAGGER_JSON [CRD_JSON...]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = { [key: string]: Json };

const INT_OR_STRING: Schema = { oneOf: [{ type: "string" }, { type: "integer" }] };
const QUANTITY: Schema = { oneOf: [{ type: "string" }, { type: "number" }] };

function isSchema(v: Json | undefined): v is Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Makes a schema (recursively) strict and JSON-Schema-valid. */
function convert(node: Json): Json {
  if (Array.isArray(node)) return node.map(convert);
  if (!isSchema(node)) return node;
  if (node["format"] === "int-or-string" || node["x-kubernetes-int-or-string"] === true) {
    return {
      ...INT_OR_STRING,
      ...(node["description"] ? { description: node["description"] } : {}),
    };
  }
  const out: Schema = {};
  for (const [k, v] of Object.entries(node)) {
    // Property maps hold schemas by name; other keys hold a schema or a list.
    out[k] =
      k === "properties" && isSchema(v)
        ? Object.fromEntries(Object.entries(v).map(([p, s]) => [p, convert(s)]))
        : convert(v);
  }
  if (node["nullable"] === true && typeof node["type"] === "string") {
    out["type"] = [node["type"], "null"];
  }
  if (
    isSchema(node["properties"]) &&
    node["additionalProperties"] === undefined &&
    node["x-kubernetes-preserve-unknown-fields"] !== true
  ) {
    out["additionalProperties"] = false;
  }
  return out;
}

/** Every definition name reachable from `root` through `#/definitions/` refs. */
function reachable(root: Json, defs: Schema): Set<string> {
  const seen = new Set<string>();
  const walk = (n: Json): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (isSchema(n)) {
      const ref = n["$ref"];
      if (typeof ref === "string" && ref.startsWith("#/definitions/")) {
        const name = ref.slice("#/definitions/".length);
        if (!seen.has(name)) {
          seen.add(name);
          walk(defs[name] ?? null);
        }
      }
      Object.values(n).forEach(walk);
    }
  };
  walk(root);
  return seen;
}

/** A string field of a JSON object ("" when absent or not a string). */
function str(o: Schema, key: string): string {
  const v = o[key];
  return typeof v === "string" ? v : "";
}

function fileName(kind: string, group: string, version: string): string {
  const g = group === "" ? "" : `-${group.split(".")[0]!.toLowerCase()}`;
  return `${kind.toLowerCase()}${g}-${version.toLowerCase()}.json`;
}

function fromSwagger(out: string, path: string): number {
  const swagger = JSON.parse(readFileSync(path, "utf8")) as Schema;
  const defs = swagger["definitions"] as Schema;
  const converted: Schema = {};
  for (const [name, def] of Object.entries(defs)) {
    if (name === "io.k8s.apimachinery.pkg.util.intstr.IntOrString") converted[name] = INT_OR_STRING;
    else if (name === "io.k8s.apimachinery.pkg.api.resource.Quantity") converted[name] = QUANTITY;
    else converted[name] = convert(def);
  }
  let n = 0;
  for (const [name, def] of Object.entries(converted)) {
    if (!isSchema(def)) continue;
    const gvks =
      defs[name] !== undefined && isSchema(defs[name])
        ? defs[name]["x-kubernetes-group-version-kind"]
        : undefined;
    if (!Array.isArray(gvks)) continue;
    const needed = reachable(def, converted);
    const schema: Schema = {
      ...def,
      definitions: Object.fromEntries([...needed].map((d) => [d, converted[d] ?? null])),
    };
    for (const gvk of gvks) {
      if (!isSchema(gvk)) continue;
      const file = fileName(str(gvk, "kind"), str(gvk, "group"), str(gvk, "version"));
      writeFileSync(join(out, file), JSON.stringify(schema));
      n++;
    }
  }
  return n;
}

function fromCrd(out: string, path: string): number {
  const crd = JSON.parse(readFileSync(path, "utf8")) as Schema;
  const spec = crd["spec"] as Schema;
  const names = spec["names"] as Schema;
  let n = 0;
  for (const v of spec["versions"] as Schema[]) {
    const schema = (v["schema"] as Schema | undefined)?.["openAPIV3Schema"];
    if (schema === undefined) continue;
    const file = fileName(str(names, "kind"), str(spec, "group"), str(v, "name"));
    writeFileSync(join(out, file), JSON.stringify(convert(schema)));
    n++;
  }
  return n;
}

const [out, swagger, ...crds] = process.argv.slice(2);
if (out === undefined || swagger === undefined) {
  process.stderr.write("usage: kube-schemas OUT_DIR SWAGGER_JSON [CRD_JSON...]\n");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
let written = fromSwagger(out, swagger);
for (const crd of crds) written += fromCrd(out, crd);
process.stdout.write(`kube-schemas: ${written} schemas in ${out}\n`);
