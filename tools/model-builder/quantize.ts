// The builder quantizes with the same code as `aigw models optimize` (src/models/block-quantize.ts).
export * from '../../src/models/block-quantize.js';
