// CI drift check: regenerates the API types from the root openapi.json into a temporary file and
// fails when they differ from the committed src/generated/schema.ts (run `npm run generate`).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const committed = join(packageDir, "src/generated/schema.ts");
const scratch = mkdtempSync(join(tmpdir(), "patreon-gate-schema-"));
const fresh = join(scratch, "schema.ts");
try {
  execFileSync(
    process.execPath,
    [join(packageDir, "node_modules/openapi-typescript/bin/cli.js"), "../../openapi.json", "--output", fresh],
    { cwd: packageDir, stdio: ["ignore", "ignore", "inherit"] },
  );
  if (readFileSync(fresh, "utf8") !== readFileSync(committed, "utf8")) {
    console.error(
      "src/generated/schema.ts is stale: openapi.json changed. Run `npm run generate` in clients/typescript and commit the result.",
    );
    process.exit(1);
  }
  console.log("src/generated/schema.ts matches openapi.json");
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
