// bench/refresh.ts's section replacement: only the text between the bench:standard markers changes,
// and the markers are inserted after the introduction when absent. Pure functions, no benchmark runs.
import test from "ava";
import { BEGIN, END, replaceSection } from "../../bench/refresh.js";

const INTRO = "# Benchmarks\n\nIntro paragraph.\nMore intro.\n\n";
const REST = "## Native core\n\nHand-written | table |\n\n## KMS\n\nText with <!-- other --> comment.\n";

test("without markers, the section goes after the introduction and the rest is kept byte for byte", (t) => {
  const out = replaceSection(INTRO + REST, "## Standard\n\ngenerated 1\n");
  t.is(out, `${INTRO}${BEGIN}\n## Standard\n\ngenerated 1\n${END}\n\n${REST}`);
  t.true(out.startsWith(INTRO));
  t.true(out.endsWith(REST));
});

test("with markers, only the text between them is replaced, and a second refresh is idempotent", (t) => {
  const once = replaceSection(INTRO + REST, "old table");
  const twice = replaceSection(once, "new table\n\n");
  t.is(twice, `${INTRO}${BEGIN}\nnew table\n${END}\n\n${REST}`);
  t.is(replaceSection(twice, "new table"), twice);
  t.false(twice.includes("old table"));
});

test("markers anywhere are honoured, and text around them is untouched", (t) => {
  const doc = `# B\n\nbefore\n${BEGIN}\nstale\n${END}\nafter ## not a heading\n## H\nend`;
  t.is(replaceSection(doc, "fresh"), `# B\n\nbefore\n${BEGIN}\nfresh\n${END}\nafter ## not a heading\n## H\nend`);
});

test("a document without level-2 headings gets the section at the end", (t) => {
  t.is(replaceSection("# B\n\nonly intro\n", "x"), `# B\n\nonly intro\n\n${BEGIN}\nx\n${END}\n`);
});

test("unbalanced markers are an error, not a silent rewrite", (t) => {
  t.throws(() => replaceSection(`# B\n${BEGIN}\nno end\n## H\n`, "x"), { message: /unbalanced/u });
  t.throws(() => replaceSection(`# B\n${END}\n${BEGIN}\n`, "x"), { message: /unbalanced/u });
});
