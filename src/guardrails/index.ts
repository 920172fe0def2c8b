// guardrails: word lists (Aho–Corasick), regexes and PII detectors on folded Unicode text, each
// rule blocking, masking or flagging; matched on input and on output streams without buffering.
export * from './guardrail-set.js';
export * from './guardrail-stream.js';
export * from './detectors.js';
export * from './guarded-backend.js';
export * from './guardrail-policy.js';
export * from './guardrail-outcome.js';
