// The crash harness (src/testing/store-crash.ts) on the overlay2 driver; a file per driver so that
// the test runner runs them side by side.
import { crashHarness } from '../testing/store-crash.js'

crashHarness('overlay2')
