// A minimal XML well-formedness check for the bench's SVG: balanced tags, quoted attributes,
// known entities, one root element. Not a general XML parser.
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
}

export function parseXml(text: string): XmlElement[] {
  const elements: XmlElement[] = [];
  const stack: string[] = [];
  let roots = 0;
  const body = text.replace(/^<\?xml[^?]*\?>\s*/u, "");
  const token = /<!--[\s\S]*?-->|<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|([^<]+)|(<)/gu;
  let match: RegExpExecArray | null;
  while ((match = token.exec(body)) !== null) {
    if (match[0].startsWith("<!--")) continue;
    if (match[6] !== undefined) throw new Error(`stray "<" at ${match.index}`);
    if (match[5] !== undefined) {
      if (stack.length === 0 && match[5].trim() !== "") throw new Error("text outside the root element");
      for (const entity of match[5].match(/&[^;\s]*;?/gu) ?? []) {
        if (!/^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);$/u.test(entity)) throw new Error(`bad entity ${entity}`);
      }
      continue;
    }
    const [, closing, name, attrs, selfClosing] = match as unknown as [string, string, string, string, string];
    if (closing === "/") {
      if (stack.pop() !== name) throw new Error(`mismatched </${name}> at ${match.index}`);
      continue;
    }
    if (stack.length === 0 && roots++ > 0) throw new Error("more than one root element");
    const attributes: Record<string, string> = {};
    for (const a of attrs.matchAll(/([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/gu)) {
      if (a[1]! in attributes) throw new Error(`duplicate attribute ${a[1]} on <${name}>`);
      attributes[a[1]!] = a[2] ?? a[3] ?? "";
    }
    elements.push({ name, attributes });
    if (selfClosing !== "/") stack.push(name);
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join("> <")}>`);
  if (roots !== 1) throw new Error("no root element");
  return elements;
}
