import { describe, expect, it } from 'vitest';
import { evaluateExpression } from '#local/cloudwatch/metric-math.ts';

describe('evaluateExpression', () => {
  it('computes arithmetic with precedence and parentheses', () => {
    expect(evaluateExpression('1 + 2 * 3', {})).toBe(7);
    expect(evaluateExpression('(1 + 2) * 3 - -1', {})).toBe(10);
    expect(evaluateExpression('a / b', { a: 1, b: 4 })).toBe(0.25);
  });

  it('counts a missing metric as 0 where another metric has a datapoint, as CloudWatch does', () => {
    expect(evaluateExpression('a + b', { a: undefined, b: 2 })).toBe(2);
    expect(evaluateExpression('IF(a >= 5, 100 * b / a, 0)', { a: 10, b: undefined })).toBe(0);
  });

  it('gives no datapoint when no metric has one, or for a division by zero', () => {
    expect(evaluateExpression('a + 1', { a: undefined })).toBeUndefined();
    expect(evaluateExpression('a + b', { a: undefined, b: undefined })).toBeUndefined();
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
