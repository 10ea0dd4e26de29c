/** Running Python for the interop tests: Debian's interpreter, with what apt installed for it. */

/**
 * The interpreter: SYNCGEN_TEST_PYTHON, else Debian's python3, where apt installs
 * python3-grpcio (a python3 earlier on PATH, e.g. pyenv's, may not have it).
 */
export const PYTHON = process.env.SYNCGEN_TEST_PYTHON || "/usr/bin/python3";

/** The environment Python runs in: no .pyc files written into the work tree. */
export function pythonEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PYTHONDONTWRITEBYTECODE: "1", ...extra };
}
