import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

// The console is served by prost at /console/ from assets embedded in the
// binary (pkg/console): the build writes them into pkg/console/dist/app.
// `npm run dev` serves the sources with hot reload and sends API calls to a
// running `prost dev` (PROST_URL, default http://127.0.0.1:8080).
const target = process.env.PROST_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/console/",
  plugins: [react(), tailwindcss()],
  resolve: { alias: { "@": new URL("./src", import.meta.url).pathname } },
  build: {
    outDir: "../pkg/console/dist/app",
    emptyOutDir: true,
    // Nothing inlined as data: URLs; the Content-Security-Policy allows
    // images from the console's own origin only.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: Object.fromEntries(
      ["/v1", "/admin", "/console/api", "/metrics", "/healthz", "/readyz"].map((p) => [p, { target }]),
    ),
  },
  test: {
    include: ["src/**/*.test.ts"],
  },
});
