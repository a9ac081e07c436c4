// The image crash harness (src/testing/image-crash.ts) on the vfs driver; a file per driver so
// that the test runner runs them side by side.
import { imageCrashHarness, rollbackAcrossLoadsTest } from '../testing/image-crash.js'

imageCrashHarness('vfs')
rollbackAcrossLoadsTest('vfs')
