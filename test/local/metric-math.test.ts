import { describe, expect, it } from 'vitest';
import { evaluateExpression } from '#local/pipeline/metric-math.ts';

describe('evaluateExpression', () => {
  it('computes arithmetic with precedence and parentheses', () => {
    expect(evaluateExpression('1 + 2 * 3', {})).toBe(7);
    expect(evaluateExpression('(1 + 2) * 3 - -1', {})).toBe(10);
    expect(evaluateExpression('a / b', { a: 1, b: 4 })).toBe(0.25);
  });

  it('gives no datapoint for arithmetic on a missing value or a division by zero', () => {
    expect(evaluateExpression('a + 1', { a: undefined })).toBeUndefined();
    expect(evaluateExpression('1 / a', { a: 0 })).toBeUndefined();
  });

  it('fills a missing value with FILL and chooses a branch with IF', () => {
    expect(evaluateExpression('FILL(a, 0) + 1', { a: undefined })).toBe(1);
    expect(evaluateExpression('IF(a >= 5, 1, 2)', { a: 5 })).toBe(1);
    expect(evaluateExpression('IF(a >= 5, 1 / 0, 2)', { a: 4 })).toBe(2);
    expect(evaluateExpression('IF(a, 1, 2)', { a: undefined })).toBeUndefined();
  });

  it('rejects unknown metric ids, functions and malformed input', () => {
    expect(() => evaluateExpression('a + b', { a: 1 })).toThrow(/unknown metric id "b"/);
    expect(() => evaluateExpression('RATE(a)', { a: 1 })).toThrow(/unsupported function RATE/);
    expect(() => evaluateExpression('(1 + 2', {})).toThrow(/expected "\)"/);
    expect(() => evaluateExpression('1 2', {})).toThrow(/unexpected text/);
    expect(() => evaluateExpression('a $ b', { a: 1, b: 1 })).toThrow(/unexpected character/);
  });
});
