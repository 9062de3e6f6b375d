// Hook failures seen in this run, shared by tests/helpers/uvu-suite.ts (which records them) and
// tests/run.ts (which counts them). Apart from uvu-suite.ts because importing that loads uvu, and
// uvu loaded before its runner starts runs every suite a second time on its own.
export const hookFailures: string[] = [];
