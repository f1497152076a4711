import react from '@vitejs/plugin-react';
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// The demo app: built to dist/, which the operator image serves at / (the facade's --ui-dir).
// `npm run dev` proxies the API to the demo stack (FACADE_URL, default http://127.0.0.1:8080).
const facade = process.env.FACADE_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, 'index.html'),
        api: resolve(import.meta.dirname, 'api.html'),
      },
    },
  },
  server: {
    proxy: {
      '/v1': { target: facade, changeOrigin: true },
      '/openapi.json': { target: facade, changeOrigin: true },
    },
  },
});
