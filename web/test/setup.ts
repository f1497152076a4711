import { notifyManager } from '@tanstack/react-query';

// React Query batches notifications with setTimeout(0), which a fake clock (and Node's 1 ms
// minimum) holds back; microtasks run inside act(), as a browser's next tick would.
notifyManager.setScheduler(queueMicrotask);

import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';

// Without vitest globals, Testing Library cannot register its own cleanup.
afterEach(() => cleanup());
