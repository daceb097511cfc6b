import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The app talks to the API on its own origin: /api is proxied to patreon-gate, so the sign-in
// cookies (set by the API for this host) are first-party and no CORS setup is needed.
const apiUrl = process.env.API_URL ?? "http://127.0.0.1:8080";
const proxy = { "/api": { target: apiUrl, changeOrigin: true } };

export default defineConfig({
  plugins: [react()],
  // The client package is linked from ../../clients/typescript, which has its own React for its
  // tests: one copy of React for the whole app.
  resolve: { dedupe: ["react", "react-dom"] },
  server: { host: "127.0.0.1", port: 5173, strictPort: true, proxy },
  preview: { host: "127.0.0.1", port: 4173, strictPort: true, proxy },
});
