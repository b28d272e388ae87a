// Public API (work in progress)
export {}
