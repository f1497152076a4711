import react from '@vitejs/plugin-react';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

const root = import.meta.dirname;

// The stylesheet ships as is, for apps to import: '@download-operator/web/style.css'.
const copyStyle: Plugin = {
  name: 'copy-style',
  closeBundle() {
    mkdirSync(resolve(root, 'dist-lib'), { recursive: true });
    copyFileSync(resolve(root, 'src/lib/style.css'), resolve(root, 'dist-lib/style.css'));
    // Lets TypeScript check `import '…/style.css'` in apps without a bundler's CSS types.
    writeFileSync(resolve(root, 'dist-lib/style.css.d.ts'), 'export {};\n');
  },
};

// The library: useDownload and <DownloadButton> for other apps, built to dist-lib/ as an ES
// module with React and React Query left to the app (peer dependencies). Types come from
// tsconfig.lib.json.
export default defineConfig({
  plugins: [react(), copyStyle],
  build: {
    outDir: 'dist-lib',
    emptyOutDir: true,
    sourcemap: true,
    copyPublicDir: false,
    minify: false,
    lib: {
      entry: resolve(root, 'src/lib/index.ts'),
      formats: ['es'],
      fileName: () => 'index.js',
    },
    rollupOptions: {
      external: [/^react($|\/)/, /^react-dom($|\/)/, /^@tanstack\/react-query($|\/)/],
      // Hooks and state: a client component wherever React Server Components are used.
      output: { banner: "'use client';" },
    },
  },
});
