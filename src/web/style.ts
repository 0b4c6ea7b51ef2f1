// The dashboard's stylesheet (/dashboard.css): one column on a phone, wider
// tables scroll sideways inside their box instead of widening the page.
export const CSS = String.raw`
:root { --fg: #1d2330; --muted: #667085; --line: #dde1e8; --bg: #f6f7f9; --accent: #0b57d0; --bad: #b00020; --good: #176f2c; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.2rem; padding: .7rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.15rem; margin: 0; }
header nav { display: flex; gap: 1rem; flex: 1; }
header a { color: var(--accent); text-decoration: none; }
main { max-width: 76rem; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
h2 { font-size: 1.2rem; margin: .4rem 0 .8rem; word-break: break-all; }
h3 { font-size: 1rem; margin: 1.4rem 0 .5rem; }
section, form.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: .85rem; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv td:first-child { color: var(--muted); width: 12rem; }
table.kv td { white-space: normal; word-break: break-word; }
dl.spec { display: grid; grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr)); gap: 0 1.2rem; margin: 0; }
dl.spec div { display: flex; gap: .6rem; padding: .25rem 0; border-bottom: 1px solid var(--line); }
dl.spec dt { color: var(--muted); min-width: 9rem; }
dl.spec dd { margin: 0; word-break: break-word; }
.status { font-weight: 600; }
.succeeded { color: var(--good); } .failed { color: var(--bad); } .running { color: var(--accent); } .cancelled, .queued { color: var(--muted); }
progress { width: 6rem; vertical-align: middle; }
.muted { color: var(--muted); }
.error, .err { color: var(--bad); }
.err:empty { display: none; }
button { font: inherit; padding: .35rem .8rem; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
button.danger { color: var(--bad); border-color: var(--bad); }
input, select { font: inherit; padding: .3rem .4rem; border: 1px solid var(--line); border-radius: 4px; max-width: 100%; }
input[type=checkbox] { width: auto; }
.toolbar { display: flex; flex-wrap: wrap; gap: .6rem; align-items: center; margin-bottom: .6rem; }
.fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: .8rem 1.2rem; }
.field label { display: block; font-weight: 600; font-size: .9rem; }
.field input:not([type=checkbox]), .field select { width: 100%; }
.field .hint { font-size: .8rem; color: var(--muted); }
.field.invalid input, .field.invalid select { border-color: var(--bad); }
fieldset { border: 1px solid var(--line); border-radius: 4px; margin: 0 0 .8rem; }
details summary { cursor: pointer; margin: .8rem 0; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(20rem, 1fr)); gap: 1rem; }
.plots figure { margin: 0; }
.plots svg { width: 100%; height: auto; }
.plots figcaption { font-size: .85rem; color: var(--muted); }
#login { max-width: 30rem; margin: 3rem auto; }
#login input { width: 100%; margin: .4rem 0 .8rem; }
@media (max-width: 640px) {
  main { padding: .6rem .6rem 2rem; }
  header { padding: .6rem; }
  th, td { padding: .3rem .35rem; }
  .hide-narrow { display: none; }
  table.kv td:first-child { width: auto; }
}
`;
