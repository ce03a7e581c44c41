import { main } from "./components/program";

// The configuration is validated, and the observed clusters' Gateway API CRDs are checked, before any resource is
// registered: a problem stops the run with one message. The resolved object's fields are the stack outputs.
export = main();
