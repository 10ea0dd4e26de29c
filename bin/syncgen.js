#!/usr/bin/env node
// The syncgen CLI, compiled to dist/ by `npm ci` (the package's prepare script).
import "../dist/cli/main.js";
