import { RelayError } from '#shared/errors.ts';

/**
 * The subset of CloudWatch metric math the relay's alarm expressions use, evaluated for one period of a local
 * run (local/cloudwatch/alarm-evaluation.ts). The deployed alarms are evaluated by CloudWatch itself.
 */

/** An alarm expression that `evaluateExpression` cannot parse. */
export class AlarmExpressionError extends RelayError {
  constructor(expression: string, problem: string) {
    super(`alarm expression "${expression}": ${problem}`);
  }
}

type Token =
  | { kind: 'number'; value: number }
  | { kind: 'name'; value: string }
  | { kind: 'op'; value: string }
  | { kind: 'end' };

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|([A-Za-z][A-Za-z0-9_]*)|(>=|<=|==|!=|[-+*/(),<>]))/y;

function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < expression.length) {
    if (expression.slice(index).trim() === '') break;
    TOKEN.lastIndex = index;
    const match = TOKEN.exec(expression);
    if (!match) throw new AlarmExpressionError(expression, `unexpected character at ${index}`);
    index = TOKEN.lastIndex;
    const [, number, name, op] = match;
    if (number !== undefined) tokens.push({ kind: 'number', value: Number(number) });
    else if (name !== undefined) tokens.push({ kind: 'name', value: name });
    else if (op !== undefined) tokens.push({ kind: 'op', value: op });
  }
  tokens.push({ kind: 'end' });
  return tokens;
}

type Value = number | undefined;

/**
 * Evaluates one period of a CloudWatch metric math expression: numbers, metric ids, `+ - * /`, comparisons
 * (1 or 0), parentheses, `IF(condition, then, else)` and `FILL(metric, value)`. As in CloudWatch, a metric
 * without a datapoint in the period counts as 0 wherever another metric of the expression has one ("Missing
 * values in time series are treated as 0", CloudWatch User Guide, "Using math expressions with CloudWatch
 * metrics"); when none has one, the expression has no datapoint (`undefined`). Division by zero gives no
 * datapoint either.
 *
 * @example
 * evaluateExpression('IF(calls >= 5, 100 * errors / calls, 0)', { calls: 10, errors: 3 }); // 30
 */
export function evaluateExpression(expression: string, variables: Readonly<Record<string, Value>>): Value {
  const tokens = tokenize(expression);
  // A period in which some metric has a datapoint: the others count as 0 in it.
  const anyData = Object.values(variables).some((value) => value !== undefined);
  let position = 0;
  const peek = (): Token => tokens[position] ?? { kind: 'end' };
  const next = (): Token => tokens[position++] ?? { kind: 'end' };
  const isOp = (token: Token, value: string) => token.kind === 'op' && token.value === value;
  const expect = (value: string) => {
    const token = next();
    if (!isOp(token, value)) throw new AlarmExpressionError(expression, `expected "${value}"`);
  };

  const arithmetic = (a: Value, b: Value, apply: (x: number, y: number) => number): Value => {
    if (a === undefined || b === undefined) return undefined;
    const result = apply(a, b);
    return Number.isFinite(result) ? result : undefined;
  };

  const comparison = (): Value => {
    const left = additive();
    const token = peek();
    if (token.kind !== 'op' || !['>=', '<=', '>', '<', '==', '!='].includes(token.value)) return left;
    next();
    const right = additive();
    return arithmetic(left, right, (x, y) => {
      const holds =
        token.value === '>='
          ? x >= y
          : token.value === '<='
            ? x <= y
            : token.value === '>'
              ? x > y
              : token.value === '<'
                ? x < y
                : token.value === '=='
                  ? x === y
                  : x !== y;
      return holds ? 1 : 0;
    });
  };

  const additive = (): Value => {
    let value = term();
    for (let token = peek(); isOp(token, '+') || isOp(token, '-'); token = peek()) {
      next();
      const right = term();
      value = isOp(token, '+')
        ? arithmetic(value, right, (x, y) => x + y)
        : arithmetic(value, right, (x, y) => x - y);
    }
    return value;
  };

  const term = (): Value => {
    let value = unary();
    for (let token = peek(); isOp(token, '*') || isOp(token, '/'); token = peek()) {
      next();
      const right = unary();
      value = isOp(token, '*')
        ? arithmetic(value, right, (x, y) => x * y)
        : arithmetic(value, right, (x, y) => x / y);
    }
    return value;
  };

  const unary = (): Value => {
    if (isOp(peek(), '-')) {
      next();
      const value = unary();
      return value === undefined ? undefined : -value;
    }
    return primary();
  };

  const primary = (): Value => {
    const token = next();
    if (token.kind === 'number') return token.value;
    if (isOp(token, '(')) {
      const value = comparison();
      expect(')');
      return value;
    }
    if (token.kind !== 'name')
      throw new AlarmExpressionError(expression, 'expected a number, a metric id or "("');
    if (!isOp(peek(), '(')) {
      if (!(token.value in variables))
        throw new AlarmExpressionError(expression, `unknown metric id "${token.value}"`);
      return variables[token.value] ?? (anyData ? 0 : undefined);
    }
    next();
    const args: Value[] = [comparison()];
    while (isOp(peek(), ',')) {
      next();
      args.push(comparison());
    }
    expect(')');
    return call(token.value, args);
  };

  const call = (name: string, args: Value[]): Value => {
    switch (name) {
      case 'IF': {
        if (args.length !== 3) throw new AlarmExpressionError(expression, 'IF takes three arguments');
        const [condition, then, otherwise] = args;
        if (condition === undefined) return undefined;
        return condition !== 0 ? then : otherwise;
      }
      case 'FILL': {
        if (args.length !== 2) throw new AlarmExpressionError(expression, 'FILL takes two arguments');
        const [value, fill] = args;
        return value ?? fill;
      }
      default:
        throw new AlarmExpressionError(expression, `unsupported function ${name}`);
    }
  };

  const value = comparison();
  if (peek().kind !== 'end')
    throw new AlarmExpressionError(expression, 'unexpected text after the expression');
  return value;
}
