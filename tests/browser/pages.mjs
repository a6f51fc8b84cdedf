// What the browser scenarios do on the web app's pages, in one place: logging in, answering
// the visible question as its type asks, and finding a candidate's tile on the live grid.

/** Logs `who` in at the hub's /app and waits for the header to name them. */
export async function logIn(page, hub, who, timeout = 20_000) {
  await page.goto(`${hub}/app`);
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("#account .who").waitFor({ timeout });
}

/** The exam page's visible question and its type. */
export async function visibleQuestion(page) {
  const section = page.locator("section.question:not([hidden])");
  return { section, type: await section.getAttribute("data-type") };
}

/** Answers the visible question in the way its type asks; returns what was entered. */
export async function answer(page, tag) {
  const { section, type } = await visibleQuestion(page);
  if (type === "MCQ") {
    // Checkboxes, found by their visible labels: tick the first option.
    const first = section.getByRole("checkbox").first();
    await first.check();
    return { type, selected: await first.getAttribute("value") };
  }
  if (type === "CODING") {
    await section.getByLabel("Programming language").fill("Rust");
    const code = `// ${tag}\nfn median(v: &mut [i64]) -> Option<f64> {\n    if v.is_empty() { return None; }\n    v.sort();\n    let n = v.len();\n    Some(if n % 2 == 1 { v[n / 2] as f64 } else { (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0 })\n}`;
    await section.getByLabel("Your code").fill(code);
    return { type, code };
  }
  const text = `An actor owns its state and serialises access through messages (${tag}); a mutex suits short critical sections.`;
  await section.getByLabel("Your answer").fill(text);
  return { type, text };
}

/** A candidate's tile on the live grid, by the name it shows. */
export const tileOf = (page, name) => page.locator("li.tile", { has: page.locator(".tile-name", { hasText: name }) });
