/**
 * `npm run docs` (typedoc). A JavaScript config, not typedoc.json, for the one
 * option JSON cannot hold: `markdownItLoader`.
 */

/**
 * TypeDoc names a heading (in "On This Page" and in its anchor) from the text
 * tokens inside it only, so a heading that is all inline code, like the
 * README's "### `session(options?)`", came out blank with the anchor `#_`.
 * Giving each inline-code token a text child with the same content lets that
 * text through; markdown-it renders inline code from `content`, so the page
 * looks the same. The anchor then matches GitHub's (`#sessionoptions`).
 *
 * @param {import('markdown-it').default} parser
 */
function headingsKeepInlineCode(parser) {
  parser.core.ruler.push('heading-inline-code-text', (state) => {
    for (const token of state.tokens) {
      if (token.type !== 'inline' || !token.children) continue;
      for (const child of token.children) {
        if (child.type === 'code_inline' && !child.children) {
          const text = new state.Token('text', '', 0);
          text.content = child.content;
          child.children = [text];
        }
      }
    }
  });
}

/** @type {Partial<import('typedoc').TypeDocOptions>} */
export default {
  entryPoints: ['src/index.ts', 'src/testing/index.ts'],
  out: 'docs/api',
  name: 'koa-locked-session',
  readme: 'README.md',
  excludePrivate: true,
  excludeInternal: true,
  treatWarningsAsErrors: true,
  tsconfig: 'tsconfig.typedoc.json',
  disableSources: true,
  markdownItLoader: headingsKeepInlineCode,
  // TypeDoc's defaults plus `sql` (README "PostgreSQL"), which it would print unhighlighted with a warning.
  highlightLanguages: ['bash', 'console', 'css', 'html', 'javascript', 'json', 'jsonc', 'json5', 'yaml', 'tsx', 'typescript', 'sql'],
};
