import { render } from 'preact'
import { App } from './app'

const root = document.getElementById('app')!
root.textContent = '' // the static "Loading…" placeholder
render(<App />, root)
