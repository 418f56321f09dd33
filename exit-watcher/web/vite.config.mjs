// The dashboard's build (issue 20). Its output, web/dist/, is committed and embedded in the
// watcher binary (exit-watcher/src/dashboard.rs names the files), so the names are fixed (no
// content hashes) and the build is deterministic: `scripts/test` rebuilds it into a temporary
// directory and fails if anything differs from what is committed.
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  // Relative URLs: the page works behind a reverse proxy that serves the watcher under a prefix.
  base: "./",
  logLevel: "warn",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // No inline code: the watcher's Content-Security-Policy allows scripts from its origin only.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
    rollupOptions: {
      output: {
        entryFileNames: "assets/dashboard.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/dashboard[extname]",
      },
    },
  },
});
