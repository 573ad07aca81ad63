// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** One `no-restricted-imports` rule for the files of a layer. */
function layer(files, patterns, message) {
  return [
    {
      files: [files],
      rules: {
        "no-restricted-imports": ["error", { patterns: [{ group: patterns, message }] }],
      },
    },
  ];
}

export default tseslint.config(
  {
    ignores: [
      "dist/",
      "node_modules/",
      "src/protocol/gen/",
      "client/src/gen/",
      "client/dist/",
      "data/",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/ban-ts-comment": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    // node:test's test()/describe() return promises the runner itself awaits.
    files: ["test/**/*.ts", "bench/**/*.ts", "client/test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "it", "describe", "suite"] },
          ],
        },
      ],
    },
  },
  {
    // Per-message and per-connection code: Node 20's optimised code gives each
    // object made by `{ ...a, b }` a hidden class of its own (two more objects
    // for the GC to mark per object kept; see Entry in memory-store.ts).
    files: ["src/core/**/*.ts", "src/gateway/**/*.ts", "src/adapters/store/**/*.ts"],
    // Built once per process: the OpenAPI document, a connection pool's options.
    ignores: ["src/gateway/openapi.ts", "src/adapters/store/postgres-primary.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "ObjectExpression > SpreadElement ~ Property",
          message:
            "No `{ ...a, b }` here: in optimised code each result gets a hidden class of its own. Build the object whole.",
        },
      ],
    },
  },
  // Layers (ARCHITECTURE.md): imports flow protocol → core → ports ← adapters,
  // with gateway and the composition root on top.
  ...layer(
    "src/protocol/**/*.ts",
    ["../*"],
    "protocol imports nothing of ours but itself and generated code",
  ),
  ...layer(
    "src/ports/**/*.ts",
    ["../core/*", "../gateway/*", "../adapters/*", "../adapters.js", "../config/*"],
    "ports are interfaces: they import no implementation",
  ),
  ...layer(
    "src/core/**/*.ts",
    ["../gateway/*", "../adapters/*", "../adapters.js", "../config/*", "../main.js"],
    "core depends on protocol and ports only, never on the gateway or an adapter",
  ),
  ...layer(
    "src/adapters/**/*.ts",
    ["../../core/*", "../../gateway/*", "../../main.js"],
    "adapters implement ports; they never reach into core or gateway",
  ),
  ...layer(
    "src/gateway/**/*.ts",
    ["../adapters/*", "../adapters.js"],
    "only the composition root (main.ts, migrate.ts, adapters.ts) names concrete adapters",
  ),
  { files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked },
);
