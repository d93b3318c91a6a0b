import { CludError } from '../core/errors';

/**
 * A flag's value as a whole number of at least `min`, written in decimal digits only: `abc`,
 * `-1`, `1.5`, `1e3` and an empty value are bad input (exit 2), never silently read as a default.
 */
export function wholeNumberFlag(flag: string, value: string | boolean | string[], min: number): number {
  const text = typeof value === 'string' ? value : '';
  const number = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(number) || number < min) {
    throw new CludError('bad-input', `${flag} must be a whole number of ${min} or more, not "${text}"`, `Example: ${flag} ${Math.max(min, 1)}`);
  }
  return number;
}
