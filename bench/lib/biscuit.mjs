// @biscuit-auth/biscuit-wasm on Node 20: the package is built for bundlers (it imports its .wasm
// as an ES module, which Node 20 does not do without a flag), so the module is instantiated here
// by hand with the same glue (biscuit_bg.js) and the one JS snippet it imports.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

// The package's main module (module/biscuit.js) is resolved but not imported.
const dir = dirname(fileURLToPath(import.meta.resolve('@biscuit-auth/biscuit-wasm')))

/** The biscuit-wasm API (Biscuit, KeyPair, AuthorizerBuilder, …), ready to use. */
export async function loadBiscuit() {
  const glue = await import(pathToFileURL(join(dir, 'biscuit_bg.js')).href)
  const module = new WebAssembly.Module(readFileSync(join(dir, 'biscuit_bg.wasm')))
  const imports = {}
  for (const { module: name } of WebAssembly.Module.imports(module)) {
    imports[name] ??= name === './biscuit_bg.js' ? glue : await import(pathToFileURL(join(dir, name)).href)
  }
  const instance = new WebAssembly.Instance(module, imports)
  glue.__wbg_set_wasm(instance.exports)
  // Its start function logs a line to stdout, where a suite's table goes: silenced.
  const log = console.log
  console.log = () => {}
  try {
    instance.exports.__wbindgen_start()
  } finally {
    console.log = log
  }
  return glue
}
