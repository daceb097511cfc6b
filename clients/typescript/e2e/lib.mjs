// Helpers shared by the e2e suites: launching Chromium, and processes: free ports, child processes in their own process
// groups with their output in artifacts/<name>.log, stopping them all, waiting for HTTP.
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

import { chromium } from "playwright-core";

/** Headless Chromium from `executablePath`, with nothing that reaches out to Google's services. */
export function launchChromium(executablePath) {
  return chromium.launch({
    executablePath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export function processes(prefix, artifacts) {
  const children = [];
  const log = (message) => console.log(`[${prefix}] ${message}`);

  /** A port nobody listens on right now (the OS picks it). */
  const freePort = () =>
    new Promise((resolvePort, reject) => {
      const server = createServer();
      server.unref();
      server.on("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address();
        server.close(() => resolvePort(port));
      });
    });

  /** Starts a long-running process in its own process group, its output in artifacts/<name>.log. */
  function start(name, command, args, options) {
    const logFile = createWriteStream(join(artifacts, `${name}.log`));
    const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.pipe(logFile);
    child.stderr.pipe(logFile);
    child.exited = new Promise((done) => child.on("exit", (code, signal) => done({ code, signal })));
    child.exited.then(({ code, signal }) => {
      if (!child.stopping) log(`${name} exited early (code ${code}, signal ${signal}); see e2e/artifacts/${name}.log`);
    });
    children.push(child);
    return child;
  }

  async function stopAll() {
    for (const child of children.splice(0).reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.stopping = true;
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        continue;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 5_000);
      await child.exited;
      clearTimeout(timer);
    }
  }

  async function waitForHttp(url, child, what) {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`${what} stopped before answering ${url}`);
      try {
        if ((await fetch(url)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${what} did not answer ${url} within 60 s`);
  }

  async function step(name, body) {
    const started = Date.now();
    await body();
    log(`ok  ${name} (${Date.now() - started} ms)`);
  }

  return { log, freePort, start, stopAll, waitForHttp, step };
}
