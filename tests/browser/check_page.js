// Runs inside a loaded page of the built book; resolves to {problems: [...], stats: {...}}.
// Waits for MathJax's first typeset, every image and the fonts, then checks what a reader sees.
(async () => {
  const problems = [];
  document.querySelectorAll('img[loading="lazy"]').forEach((img) => { img.loading = 'eager'; });
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await Promise.all([...document.images].map((img) => (img.complete ? null : new Promise((done) => {
    img.addEventListener('load', done); img.addEventListener('error', done);
  }))));
  await document.fonts.ready;

  const main = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const describe = (el) => {
    const cls = (el.getAttribute('class') || '').trim().split(/\s+/).slice(0, 2).join('.');
    const text = (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 60);
    return `<${el.tagName.toLowerCase()}${cls ? '.' + cls : ''}> "${text}"`;
  };

  // 1. Every formula typeset: Sphinx's math nodes each hold a MathJax container, no TeX errors,
  //    and no TeX delimiters left in the text outside code.
  const mathNodes = [...main.querySelectorAll('span.math, div.math')];
  const untypeset = mathNodes.filter((m) => !m.querySelector('mjx-container'));
  if (untypeset.length) {
    problems.push(`${untypeset.length} of ${mathNodes.length} formulas not typeset, first: ${describe(untypeset[0])}`);
  }
  const texErrors = [...main.querySelectorAll('mjx-merror')];
  if (texErrors.length) {
    problems.push(`${texErrors.length} TeX errors, first: ${texErrors[0].getAttribute('data-mjx-error') || describe(texErrors[0])}`);
  }
  const prose = main.cloneNode(true);
  prose.querySelectorAll('pre, code, kbd, samp, script, style, mjx-container, .highlight, textarea').forEach((e) => e.remove());
  const text = prose.textContent;
  const around = (i) => JSON.stringify(text.slice(Math.max(0, i - 40), i + 40).replace(/\s+/g, ' '));
  for (const [name, re] of [['raw math', /\\\(|\\\)|\\\[|\\\]|\$\$/],
                            ['raw role', /\{(glue|cite|numref|ref|eq|doc|term|download|abbr|math)(:[a-z-]+)?\}/],
                            ['raw glue or cite', /\{(glue|cite)\b/]]) {
    const m = re.exec(text);
    if (m) problems.push(`${name} in the text: ${around(m.index)}`);
  }

  // 2. Every image loaded.
  for (const img of document.images) {
    if (!(img.complete && img.naturalWidth > 0)) problems.push(`image not loaded: ${img.getAttribute('src')}`);
  }

  // 3. Nothing leaves the main column: an element may be wider only inside a box that scrolls
  //    (overflow-x auto or scroll); a box that hides or clips its overflow cuts the content off.
  const columnRight = main.getBoundingClientRect().right;
  const overflowing = [];
  const cut = [];
  for (const el of main.querySelectorAll('*')) {
    if (el.closest('mjx-container') !== el && el.closest('mjx-container')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    let scrolls = false;
    let clipper = null;
    for (let a = el.parentElement; a && a !== main.parentElement; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === 'auto' || ox === 'scroll') { scrolls = true; break; }
      if ((ox === 'hidden' || ox === 'clip') && !clipper) clipper = a;
    }
    if (scrolls) continue;
    const style = getComputedStyle(el);
    if (style.position === 'absolute' && style.clip !== 'auto') continue;  // visually-hidden helpers
    if (clipper && r.right > clipper.getBoundingClientRect().right + 2 && r.width > 8) cut.push(el);
    else if (!clipper && r.right > columnRight + 2) overflowing.push(el);
  }
  const outermost = (els) => els.filter((el) => !els.some((o) => o !== el && o.contains(el)));
  if (overflowing.length) {
    const o = outermost(overflowing);
    problems.push(`${o.length} elements overflow the main column, first: ${describe(o[0])}`);
  }
  if (cut.length) {
    const c = outermost(cut);
    problems.push(`${c.length} elements cut off by a box that hides overflow, first: ${describe(c[0])}`);
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 2) {
    problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px wide in a ${window.innerWidth} px window`);
  }

  return {
    problems,
    stats: { formulas: mathNodes.length, images: document.images.length,
             tables: main.querySelectorAll('table').length, height: document.documentElement.scrollHeight,
             scrolling: [...main.querySelectorAll('*')].filter((e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                                                               && e.scrollWidth > e.clientWidth + 2).length },
  };
})()
