/**
 * Shell text as a shell reads it, with a real grammar: tree-sitter's Bash grammar (compiled to
 * WASM, loaded once at import) parses the text, and this module turns the tree into plain values
 * the checker reasons about: every simple command anywhere (lists, pipelines, subshells, groups,
 * loops, conditionals, function bodies, command and process substitutions), each word's value as
 * the shell would compute it where that is static (quotes removed, backslashes, `$'...'` escapes
 * decoded) and marked dynamic where it is not (parameter and command expansions, arithmetic, brace
 * expansion), redirections with their targets, here-documents and here-strings, and pipeline
 * positions. Parsed texts are cached (interactive lines and exec commands repeat).
 *
 * tree-sitter recovers from errors instead of failing; any ERROR or MISSING node marks the reading
 * incomplete (`errors`), and an error that reaches the end of the text (an open quote, a missing
 * `fi`) marks it as needing more input (`incomplete`), as a shell would prompt with PS2.
 */
import { createRequire } from 'node:module';
import { Language, type Node, Parser } from 'web-tree-sitter';

const require = createRequire(import.meta.url);
await Parser.init();
const bash = await Language.load(require.resolve('tree-sitter-bash/tree-sitter-bash.wasm'));
const parser = new Parser();
parser.setLanguage(bash);

/** Stands for the unknown part of a dynamic word in {@link ShellWord.value}. */
export const UNKNOWN = '\u0000';

/** One word as the shell would compute it. */
export interface ShellWord {
  /** The value; each part the checker cannot know is {@link UNKNOWN}. */
  readonly value: string;
  /** True when every part is known (no expansion, substitution, arithmetic, brace expansion). */
  readonly static: boolean;
  /** Unquoted glob characters (`*`, `?`, `[`) appear in it. */
  readonly glob: boolean;
  /** Names of the variables it expands. */
  readonly variables: readonly string[];
  /** Kinds of the parts computed at run time. */
  readonly computed: readonly ('variable' | 'command' | 'arithmetic' | 'brace')[];
  /** Contains an unquoted `!` history designator (interactive shells expand it). */
  readonly history: boolean;
  /** The source text. */
  readonly raw: string;
}

/** A redirection of a command. */
export interface ShellRedirect {
  /** `>`, `>>`, `<`, `&>`, `>|`, `<>`, `<<`, `<<-`, `<<<`, ... */
  readonly op: string;
  readonly target?: ShellWord;
  /** Here-document body, or here-string value (`value` with unknown parts). */
  readonly input?: ShellWord;
}

/** One simple command. */
export interface ShellCommand {
  /** Name and arguments, prefix assignments excluded. */
  readonly words: readonly ShellWord[];
  readonly assignments: readonly { readonly name: string; readonly value: ShellWord }[];
  readonly redirects: readonly ShellRedirect[];
  /** Its standard input comes from a pipe. */
  readonly pipedInput: boolean;
  /** Inside a function definition (runs when the function is called). */
  readonly inFunction?: string;
}

/** A reading of shell text. */
export interface ShellScript {
  /** Every simple command, in text order. */
  readonly commands: readonly ShellCommand[];
  /** Function definitions: name and the commands of its body. */
  readonly functions: readonly { readonly name: string; readonly body: readonly ShellCommand[] }[];
  /** Variables assigned anywhere (`x=1`, `export x=1`, `read x`, `for x in`). */
  readonly assigned: ReadonlySet<string>;
  /** Variables assigned by plain assignment (`x=...`, `export x=...`, `declare x=...`). */
  readonly assignedPlainly: ReadonlySet<string>;
  /** The grammar found errors (an open quote, a missing keyword, stray tokens). */
  readonly errors: boolean;
  /** The errors are at the end of the text: a shell would wait for more input. */
  readonly incomplete: boolean;
}

/** Deepest nesting walked; deeper text is an error. */
const MAX_DEPTH = 200;
const CACHE_SIZE = 2_000;
const cache = new Map<string, ShellScript>();

/** Reads `text` as Bash reads it. */
export function parseShell(text: string): ShellScript {
  const hit = cache.get(text);
  if (hit) {
    cache.delete(text);
    cache.set(text, hit);
    return hit;
  }
  const tree = parser.parse(text);
  let script: ShellScript;
  try {
    if (!tree) throw new Error('no tree');
    const reader = new Reader(text);
    reader.statement(tree.rootNode, false, undefined, 0);
    const root = tree.rootNode;
    const errors = root.hasError || reader.tooDeep;
    script = {
      commands: reader.commands,
      functions: reader.functions,
      assigned: reader.assigned,
      assignedPlainly: reader.assignedPlainly,
      errors,
      incomplete: errors && !reader.tooDeep && errorAtEnd(root, Buffer.byteLength(text)),
    };
  } finally {
    tree?.delete();
  }
  if (text.length <= 8_192) {
    cache.set(text, script);
    if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  }
  return script;
}

function errorAtEnd(root: Node, end: number): boolean {
  let found = false;
  const visit = (node: Node) => {
    if (found) return;
    if (node.isMissing || node.isError) {
      if (node.endIndex >= end || node.isMissing) found = true;
      return;
    }
    for (const child of node.children) if (child) visit(child);
  };
  visit(root);
  return found;
}

const ANSI_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  e: '\x1b',
  E: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '?': '?',
};

/** Decodes the body of `$'...'` as Bash does. */
function decodeAnsiC(body: string): string {
  return body.replace(
    /\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)/gs,
    (_, esc: string) => {
      const c = esc[0]!;
      if (c === 'x' || c === 'u' || c === 'U') return String.fromCodePoint(Number.parseInt(esc.slice(1), 16));
      if (/[0-7]/.test(c)) return String.fromCharCode(Number.parseInt(esc, 8) & 0xff);
      if (c === 'c') return String.fromCharCode(esc.charCodeAt(1) & 0x1f);
      return ANSI_ESCAPES[c] ?? `\\${c}`;
    },
  );
}

/** An unquoted word's value: backslash removes itself (a backslash-newline joins lines). */
function unescapeUnquoted(text: string): string {
  return text.replace(/\\(\n|.)/gs, (_, c: string) => (c === '\n' ? '' : c));
}

/** Inside double quotes a backslash escapes only `$`, backquote, `"`, `\` and newline. */
function unescapeDouble(text: string): string {
  return text.replace(/\\([$`"\\\n])/g, (_, c: string) => (c === '\n' ? '' : c));
}

interface WordBuilder {
  value: string;
  static: boolean;
  glob: boolean;
  history: boolean;
  variables: string[];
  computed: ShellWord['computed'][number][];
}

class Reader {
  readonly commands: ShellCommand[] = [];
  readonly functions: { name: string; body: ShellCommand[] }[] = [];
  readonly assigned = new Set<string>();
  readonly assignedPlainly = new Set<string>();
  tooDeep = false;

  constructor(readonly text: string) {}

  /** Walks a statement-like node; `piped`: its stdin is a pipe. */
  statement(
    node: Node,
    piped: boolean,
    fn: string | undefined,
    depth: number,
    redirects: ShellRedirect[] = [],
  ): void {
    if (depth > MAX_DEPTH) {
      this.tooDeep = true;
      return;
    }
    switch (node.type) {
      case 'command':
        this.command(node, piped, fn, depth, redirects);
        return;
      case 'pipeline': {
        const stages = node.namedChildren.filter((c): c is Node => c !== null && c.type !== 'comment');
        for (const [i, stage] of stages.entries()) {
          this.statement(stage, piped || i > 0, fn, depth + 1, i === stages.length - 1 ? redirects : []);
        }
        return;
      }
      case 'redirected_statement': {
        const own = node
          .childrenForFieldName('redirect')
          .flatMap((r) => (r ? [this.redirect(r, fn, depth)] : []));
        const body = node.childForFieldName('body');
        const all = [...own, ...redirects];
        if (body?.type === 'command' || body?.type === 'pipeline') {
          this.statement(body, piped, fn, depth + 1, all);
          return;
        }
        // `{ ...; } > target`, `(...) > target`: the redirection applies to the whole group.
        this.commands.push({
          words: [],
          assignments: [],
          redirects: all,
          pipedInput: piped,
          ...(fn ? { inFunction: fn } : {}),
        });
        if (body) this.statement(body, piped, fn, depth + 1);
        return;
      }
      case 'function_definition': {
        const name = node.childForFieldName('name')?.text ?? '';
        const start = this.commands.length;
        const body = node.childForFieldName('body');
        if (body) this.statement(body, false, name, depth + 1);
        this.functions.push({ name, body: this.commands.slice(start) });
        return;
      }
      case 'variable_assignment':
      case 'variable_assignments':
        this.commands.push({
          words: [],
          assignments: this.assignments(node, fn, depth),
          redirects,
          pipedInput: piped,
          ...(fn ? { inFunction: fn } : {}),
        });
        return;
      case 'declaration_command':
      case 'unset_command':
        this.declaration(node, piped, fn, depth, redirects);
        return;
      case 'for_statement': {
        const variable = node.childForFieldName('variable');
        if (variable) this.assigned.add(variable.text);
        for (const value of node.childrenForFieldName('value')) if (value) this.word(value, fn, depth + 1);
        const body = node.childForFieldName('body');
        if (body) this.statement(body, false, fn, depth + 1);
        return;
      }
      default:
        // Lists, subshells, groups, if/while/case, test commands, negations: walk every child;
        // words found outside commands (case subjects, test operands) may hold substitutions.
        for (const child of node.namedChildren) {
          if (!child || child.type === 'comment') continue;
          if (isWordNode(child.type)) this.word(child, fn, depth + 1);
          else
            this.statement(
              child,
              piped && child.type === 'subshell',
              fn,
              depth + 1,
              STATEMENT_TYPES.has(child.type) ? [] : redirects,
            );
        }
    }
  }

  private assignments(
    node: Node,
    fn: string | undefined,
    depth: number,
  ): { name: string; value: ShellWord }[] {
    const list =
      node.type === 'variable_assignment'
        ? [node]
        : node.namedChildren.filter((c): c is Node => c?.type === 'variable_assignment');
    return list.map((a) => {
      const name = a.childForFieldName('name')?.text ?? '';
      this.assigned.add(name);
      this.assignedPlainly.add(name);
      const value = a.childForFieldName('value');
      return { name, value: value ? this.word(value, fn, depth + 1) : staticWord('') };
    });
  }

  /** `export x=1`, `declare -x y`, `local z=$(...)`, `readonly`, `typeset`, `unset`. */
  private declaration(
    node: Node,
    piped: boolean,
    fn: string | undefined,
    depth: number,
    redirects: ShellRedirect[],
  ): void {
    const words: ShellWord[] = [staticWord(node.child(0)?.text ?? '')];
    const assignments: { name: string; value: ShellWord }[] = [];
    for (const child of node.namedChildren) {
      if (!child) continue;
      if (child.type === 'variable_assignment') assignments.push(...this.assignments(child, fn, depth));
      else if (child.type === 'variable_name') {
        this.assigned.add(child.text);
        words.push(staticWord(child.text));
      } else words.push(this.word(child, fn, depth + 1));
    }
    this.commands.push({
      words,
      assignments,
      redirects,
      pipedInput: piped,
      ...(fn ? { inFunction: fn } : {}),
    });
  }

  private command(
    node: Node,
    piped: boolean,
    fn: string | undefined,
    depth: number,
    redirects: ShellRedirect[],
  ): void {
    const words: ShellWord[] = [];
    const assignments: { name: string; value: ShellWord }[] = [];
    const own: ShellRedirect[] = [];
    for (const child of node.namedChildren) {
      if (!child || child.type === 'comment') continue;
      if (child.type === 'variable_assignment') assignments.push(...this.assignments(child, fn, depth));
      else if (child.type === 'command_name') {
        const inner = child.namedChild(0);
        words.push(inner ? this.word(inner, fn, depth + 1) : staticWord(child.text));
      } else if (child.type.endsWith('_redirect')) own.push(this.redirect(child, fn, depth));
      else words.push(this.word(child, fn, depth + 1));
    }
    const command: ShellCommand = {
      words,
      assignments,
      redirects: [...own, ...redirects],
      pipedInput: piped,
      ...(fn ? { inFunction: fn } : {}),
    };
    if (words[0]?.value === 'read' || words[0]?.value === 'mapfile' || words[0]?.value === 'readarray') {
      for (const w of words.slice(1)) if (/^[A-Za-z_]\w*$/.test(w.value)) this.assigned.add(w.value);
    }
    this.commands.push(command);
  }

  private redirect(node: Node, fn: string | undefined, depth: number): ShellRedirect {
    if (node.type === 'heredoc_redirect') {
      const bodyNode = node.namedChildren.find((c) => c?.type === 'heredoc_body');
      const start = node.namedChildren.find((c) => c?.type === 'heredoc_start')?.text ?? '';
      const quoted = /['"\\]/.test(start);
      const op = node.child(0)?.text ?? '<<';
      let input: ShellWord = staticWord('');
      if (bodyNode) {
        // With a quoted delimiter the body is literal; else it expands like a double-quoted string.
        const b: WordBuilder = {
          value: '',
          static: true,
          glob: false,
          history: false,
          variables: [],
          computed: [],
        };
        if (quoted) b.value = bodyNode.text;
        else this.parts(bodyNode, b, fn, depth + 1, true);
        input = finish(b, bodyNode.text);
      }
      return { op, input };
    }
    if (node.type === 'herestring_redirect') {
      const value = node.namedChildren.find((c) => c !== null);
      return { op: '<<<', input: value ? this.word(value, fn, depth + 1) : staticWord('') };
    }
    const destination =
      node.childForFieldName('destination') ??
      node.namedChildren.filter((c) => c?.type !== 'file_descriptor').at(-1) ??
      null;
    const op = node.children.find((c) => c !== null && !c.isNamed)?.text ?? '>';
    return { op, ...(destination ? { target: this.word(destination, fn, depth + 1) } : {}) };
  }

  /** Computes a word's value; substitutions inside are read as commands of their own. */
  word(node: Node, fn: string | undefined, depth: number): ShellWord {
    const b: WordBuilder = {
      value: '',
      static: true,
      glob: false,
      history: false,
      variables: [],
      computed: [],
    };
    this.parts(node, b, fn, depth, false);
    return finish(b, node.text);
  }

  private parts(node: Node, b: WordBuilder, fn: string | undefined, depth: number, quoted: boolean): void {
    if (depth > MAX_DEPTH) {
      this.tooDeep = true;
      b.static = false;
      return;
    }
    switch (node.type) {
      case 'word':
      case 'number':
      case 'variable_name':
      case 'special_variable_name':
        if (!quoted && isBraceExpansion(node.text)) {
          // Brace expansion (`sha{d,}ow`, `{1..3}`): one word becomes several.
          b.static = false;
          b.computed.push('brace');
          b.value += UNKNOWN;
          return;
        }
        if (!quoted) {
          if (/(^|[^\\])[*?[]/.test(node.text)) b.glob = true;
          if (/(^|[^\\])!(?=[^\s=(])/.test(node.text)) b.history = true;
        }
        b.value += quoted ? node.text : unescapeUnquoted(node.text);
        return;
      case 'raw_string':
        b.value += node.text.slice(1, -1);
        return;
      case 'ansi_c_string':
        b.value += decodeAnsiC(node.text.slice(2, -1));
        return;
      case 'string_content':
      case 'heredoc_content':
        b.value += unescapeDouble(node.text);
        return;
      case 'string':
      case 'translated_string':
      case 'heredoc_body': {
        // Text between the named parts (quotes, literal text tree-sitter leaves unnamed) counts too.
        let at = node.startIndex + (node.type === 'string' ? 1 : node.type === 'translated_string' ? 2 : 0);
        const end = node.endIndex - (node.type === 'heredoc_body' ? 0 : 1);
        const bytes = Buffer.from(this.text);
        for (const child of node.namedChildren) {
          if (!child) continue;
          if (child.startIndex > at)
            b.value += unescapeDouble(bytes.subarray(at, child.startIndex).toString());
          this.parts(child, b, fn, depth + 1, true);
          at = child.endIndex;
        }
        if (end > at) b.value += unescapeDouble(bytes.subarray(at, end).toString());
        return;
      }
      case 'concatenation':
        if (!quoted && isBraceExpansion(node.text)) {
          b.static = false;
          b.computed.push('brace');
          b.value += UNKNOWN;
          return;
        }
        for (const child of node.children) if (child) this.parts(child, b, fn, depth + 1, quoted);
        return;
      case 'simple_expansion':
      case 'expansion': {
        b.static = false;
        b.value += UNKNOWN;
        b.computed.push('variable');
        const name = node.descendantsOfType(['variable_name', 'special_variable_name'])[0];
        if (name) b.variables.push(name.text);
        // ${x:-$(cmd)} and friends: substitutions inside still run.
        for (const child of node.descendantsOfType(['command_substitution', 'process_substitution'])) {
          if (child) this.statement(child, false, fn, depth + 1);
        }
        return;
      }
      case 'command_substitution':
      case 'process_substitution':
        b.static = false;
        b.value += UNKNOWN;
        b.computed.push('command');
        for (const child of node.namedChildren) if (child) this.statement(child, false, fn, depth + 1);
        return;
      case 'arithmetic_expansion':
      case 'brace_expression':
        b.static = false;
        b.value += UNKNOWN;
        b.computed.push(node.type === 'brace_expression' ? 'brace' : 'arithmetic');
        for (const child of node.descendantsOfType([
          'command_substitution',
          'simple_expansion',
          'expansion',
        ])) {
          if (child?.type === 'command_substitution') this.statement(child, false, fn, depth + 1);
          else if (child) {
            const name = child.descendantsOfType('variable_name')[0];
            if (name) b.variables.push(name.text);
          }
        }
        return;
      default:
        if (node.isNamed && node.namedChildCount > 0) {
          for (const child of node.children) if (child) this.parts(child, b, fn, depth + 1, quoted);
        } else if (node.isNamed || node.type === '$' || node.type === '=') {
          b.value += quoted ? node.text : unescapeUnquoted(node.text);
        } else if (!quoted && node.type !== '"') {
          b.value += node.text;
        }
    }
  }
}

const STATEMENT_TYPES = new Set([
  'command',
  'pipeline',
  'list',
  'subshell',
  'compound_statement',
  'redirected_statement',
  'if_statement',
  'while_statement',
  'for_statement',
  'c_style_for_statement',
  'case_statement',
  'function_definition',
  'negated_command',
  'test_command',
  'declaration_command',
  'variable_assignment',
  'variable_assignments',
]);

function isWordNode(type: string): boolean {
  return [
    'word',
    'string',
    'raw_string',
    'ansi_c_string',
    'concatenation',
    'simple_expansion',
    'expansion',
    'command_substitution',
    'process_substitution',
    'arithmetic_expansion',
    'number',
  ].includes(type);
}

/** Unquoted `{a,b}` / `{1..3}` (brace expansion: one word becomes several). */
function isBraceExpansion(text: string): boolean {
  return /(^|[^\\$])\{[^{}\s'"]*(,|\.\.)[^{}\s'"]*\}/.test(text);
}

function finish(b: WordBuilder, raw: string): ShellWord {
  return {
    value: b.value,
    static: b.static,
    glob: b.glob,
    variables: b.variables,
    computed: b.computed,
    history: b.history,
    raw,
  };
}

/** A word with a known value. */
export function staticWord(value: string): ShellWord {
  return { value, static: true, glob: false, variables: [], computed: [], history: false, raw: value };
}
