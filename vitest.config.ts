import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // Each test boots real QEMU guests under TCG; 2 cores allow two files at a time.
          testTimeout: 300000,
          hookTimeout: 120000,
          fileParallelism: true,
          maxWorkers: 2,
          pool: 'forks',
        },
      },
      {
        test: {
          // Every bundle of test/diff/cases.ts under runc and under kata-runtime, compared
          // (docs/differential.md). One VM at a time: the cases run strictly in sequence.
          name: 'diff',
          include: ['test/diff/**/*.test.ts'],
          testTimeout: 300000,
          hookTimeout: 120000,
          fileParallelism: false,
          maxWorkers: 1,
          pool: 'forks',
        },
      },
      {
        test: {
          // Fault injection (test/faults/, docs/security.md): real VMs killed at every stage, one
          // at a time. `npm run faults` runs all of it; `npm run faults:ci` one fault per stage.
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          testTimeout: 180000,
          hookTimeout: 120000,
          fileParallelism: false,
          maxWorkers: 1,
          pool: 'forks',
        },
      },
      {
        test: {
          // podman, docker and containerd driving kata-runtime (docs/engines.md); not part of
          // `npm test`: .ci/run runs `npm run test:engines` after installing the engines.
          name: 'engines',
          include: ['test/engines/**/*.test.ts'],
          testTimeout: 600000,
          hookTimeout: 300000,
          fileParallelism: true,
          maxWorkers: 2,
          pool: 'forks',
        },
      },
    ],
  },
});
