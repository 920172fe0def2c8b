/** Prices are integer micro-dollars per million tokens; costs are integer micro-dollars. */
export interface ModelPrice {
  inputMicrosPerMillionTokens: number;
  outputMicrosPerMillionTokens: number;
}

/** Rounded up, so many small requests can never add up to less than they cost. */
export function costMicros(promptTokens: number, completionTokens: number, price: ModelPrice): number {
  return (
    Math.ceil((promptTokens * price.inputMicrosPerMillionTokens) / 1_000_000) +
    Math.ceil((completionTokens * price.outputMicrosPerMillionTokens) / 1_000_000)
  );
}

/** Micro-dollars as a dollar string with six decimals, e.g. 1234 → "0.001234". */
export function formatUsd(micros: number): string {
  const whole = Math.floor(micros / 1_000_000);
  return `${whole}.${String(micros % 1_000_000).padStart(6, '0')}`;
}
