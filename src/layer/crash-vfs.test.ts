// The crash harness (src/testing/store-crash.ts) on the vfs driver; a file per driver so that
// the test runner runs them side by side.
import { crashHarness } from '../testing/store-crash.js'

crashHarness('vfs')
