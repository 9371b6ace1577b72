// A small PromQL parser for the dashboard test: enough of the grammar to reject a malformed
// query and to tell metric names (and their label matchers) from functions, aggregations,
// grouping labels and Grafana variables. Not a full implementation: it knows the functions and
// operators the dashboard may reasonably use, and fails loudly on anything else.

/** One label matcher of a selector: `outcome="hit"`. */
export interface Matcher {
  readonly label: string;
  readonly op: '=' | '!=' | '=~' | '!~';
  readonly value: string;
}

/** A vector selector found in an expression. */
export interface Selector {
  readonly metric: string;
  readonly matchers: readonly Matcher[];
}

/** A syntax error, with the offset in the expression. */
export class PromQLError extends Error {
  override readonly name = 'PromQLError';
}

const AGGREGATIONS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'stddev',
  'stdvar',
  'group',
  'topk',
  'bottomk',
  'quantile',
  'count_values',
]);
const FUNCTIONS = new Set([
  'abs',
  'absent',
  'absent_over_time',
  'avg_over_time',
  'ceil',
  'changes',
  'clamp',
  'clamp_max',
  'clamp_min',
  'count_over_time',
  'delta',
  'deriv',
  'exp',
  'floor',
  'histogram_quantile',
  'idelta',
  'increase',
  'irate',
  'label_join',
  'label_replace',
  'last_over_time',
  'ln',
  'log2',
  'log10',
  'max_over_time',
  'min_over_time',
  'predict_linear',
  'quantile_over_time',
  'rate',
  'resets',
  'round',
  'scalar',
  'sort',
  'sort_desc',
  'sqrt',
  'stddev_over_time',
  'sum_over_time',
  'time',
  'timestamp',
  'vector',
]);
const BINARY_OPS = ['==', '!=', '<=', '>=', '<', '>', '+', '-', '*', '/', '%', '^'];
const SET_OPS = new Set(['and', 'or', 'unless']);

type TokenKind = 'ident' | 'number' | 'duration' | 'string' | 'var' | 'punct';
interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly at: number;
}

const PUNCT = [
  '=~',
  '!~',
  '==',
  '!=',
  '<=',
  '>=',
  '(',
  ')',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '=',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '^',
];

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const ws = /^\s+/.exec(rest);
    if (ws) {
      i += ws[0].length;
      continue;
    }
    const str = /^"(?:[^"\\]|\\.)*"|^'(?:[^'\\]|\\.)*'|^`[^`]*`/.exec(rest);
    if (str) {
      tokens.push({ kind: 'string', text: str[0].slice(1, -1), at: i });
      i += str[0].length;
      continue;
    }
    // Grafana variables: $var, ${var}, $__rate_interval.
    const variable = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}|^\$[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
    if (variable) {
      tokens.push({ kind: 'var', text: variable[0], at: i });
      i += variable[0].length;
      continue;
    }
    const duration = /^(?:\d+(?:ms|s|m|h|d|w|y))+/.exec(rest);
    if (duration) {
      tokens.push({ kind: 'duration', text: duration[0], at: i });
      i += duration[0].length;
      continue;
    }
    const number = /^(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?/i.exec(rest);
    if (number) {
      tokens.push({ kind: 'number', text: number[0], at: i });
      i += number[0].length;
      continue;
    }
    // A leading colon is legal in metric names but would swallow a subquery step ([1h:5m]).
    const ident = /^[A-Za-z_][A-Za-z0-9_:]*/.exec(rest);
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0], at: i });
      i += ident[0].length;
      continue;
    }
    const punct = PUNCT.find((p) => rest.startsWith(p));
    if (!punct) throw new PromQLError(`unexpected character ${JSON.stringify(expr[i])} at ${i}`);
    tokens.push({ kind: 'punct', text: punct, at: i });
    i += punct.length;
  }
  return tokens;
}

/** Parses one PromQL expression; returns every vector selector in it, in order. Throws PromQLError. */
export function parsePromQL(expr: string): Selector[] {
  const tokens = tokenize(expr);
  const selectors: Selector[] = [];
  let pos = 0;

  const peek = (offset = 0): Token | undefined => tokens[pos + offset];
  const where = (): string => (peek() ? `at ${peek()!.at} (${JSON.stringify(peek()!.text)})` : 'at the end');
  const fail = (message: string): never => {
    throw new PromQLError(`${message} ${where()} in ${JSON.stringify(expr)}`);
  };
  const isPunct = (text: string, offset = 0): boolean =>
    peek(offset)?.kind === 'punct' && peek(offset)?.text === text;
  const isIdent = (text: string): boolean => peek()?.kind === 'ident' && peek()?.text === text;
  const expectPunct = (text: string): void => {
    if (!isPunct(text)) fail(`expected ${JSON.stringify(text)}`);
    pos++;
  };

  function labelList(): void {
    expectPunct('(');
    while (!isPunct(')')) {
      if (peek()?.kind !== 'ident') fail('expected a label name');
      pos++;
      if (isPunct(',')) pos++;
      else if (!isPunct(')')) fail('expected "," or ")"');
    }
    pos++;
  }

  function matchers(): Matcher[] {
    expectPunct('{');
    const list: Matcher[] = [];
    while (!isPunct('}')) {
      const label = peek();
      if (label?.kind !== 'ident') fail('expected a label name');
      pos++;
      const op = peek();
      if (op?.kind !== 'punct' || !['=', '!=', '=~', '!~'].includes(op.text))
        fail('expected a matcher operator');
      pos++;
      const value = peek();
      if (value?.kind !== 'string') fail('expected a quoted label value');
      pos++;
      list.push({ label: label!.text, op: op!.text as Matcher['op'], value: value!.text });
      if (isPunct(',')) pos++;
      else if (!isPunct('}')) fail('expected "," or "}"');
    }
    pos++;
    return list;
  }

  function rangeOrSubquery(): void {
    expectPunct('[');
    const first = peek();
    if (first?.kind !== 'duration' && first?.kind !== 'var')
      fail('expected a duration or a Grafana variable');
    pos++;
    if (isPunct(':')) {
      pos++;
      if (peek()?.kind === 'duration' || peek()?.kind === 'var') pos++;
    }
    expectPunct(']');
  }

  function postfix(): void {
    if (isPunct('[')) rangeOrSubquery();
    if (isIdent('offset')) {
      pos++;
      if (isPunct('-')) pos++;
      if (peek()?.kind !== 'duration' && peek()?.kind !== 'var') fail('expected an offset duration');
      pos++;
    }
  }

  function args(): void {
    expectPunct('(');
    if (isPunct(')')) {
      pos++;
      return;
    }
    for (;;) {
      expression();
      if (isPunct(',')) pos++;
      else break;
    }
    expectPunct(')');
  }

  function primary(): void {
    const token = peek();
    if (!token) fail('unexpected end of expression');
    if (token!.kind === 'number' || token!.kind === 'string') {
      pos++;
      return;
    }
    if (isPunct('-') || isPunct('+')) {
      pos++;
      primary();
      return;
    }
    if (isPunct('(')) {
      pos++;
      expression();
      expectPunct(')');
      postfix();
      return;
    }
    if (isPunct('{')) {
      const list = matchers();
      const name = list.find((m) => m.label === '__name__' && m.op === '=');
      if (!name) fail('a selector without a metric name needs __name__="…"');
      selectors.push({ metric: name!.value, matchers: list.filter((m) => m !== name) });
      postfix();
      return;
    }
    if (token!.kind !== 'ident') fail('expected an expression');
    const name = token!.text;
    if (
      AGGREGATIONS.has(name) &&
      (isPunct('(', 1) || peek(1)?.text === 'by' || peek(1)?.text === 'without')
    ) {
      pos++;
      if (isIdent('by') || isIdent('without')) {
        pos++;
        labelList();
      }
      args();
      if (isIdent('by') || isIdent('without')) {
        pos++;
        labelList();
      }
      return;
    }
    if (isPunct('(', 1)) {
      if (!FUNCTIONS.has(name)) fail(`unknown function ${name}`);
      pos++;
      args();
      return;
    }
    if (name === 'by' || name === 'without' || name === 'on' || name === 'ignoring' || SET_OPS.has(name)) {
      fail('expected an expression');
    }
    pos++;
    const list = isPunct('{') ? matchers() : [];
    selectors.push({ metric: name, matchers: list });
    postfix();
  }

  function binaryOperator(): boolean {
    const token = peek();
    if (!token) return false;
    const isOp =
      (token.kind === 'punct' && BINARY_OPS.includes(token.text)) ||
      (token.kind === 'ident' && SET_OPS.has(token.text));
    if (!isOp) return false;
    pos++;
    if (isIdent('bool')) pos++;
    if (isIdent('on') || isIdent('ignoring')) {
      pos++;
      labelList();
      if (isIdent('group_left') || isIdent('group_right')) {
        pos++;
        if (isPunct('(')) labelList();
      }
    }
    return true;
  }

  function expression(): void {
    primary();
    while (binaryOperator()) primary();
  }

  if (tokens.length === 0) fail('empty expression');
  expression();
  if (pos !== tokens.length) fail('unexpected token');
  return selectors;
}
