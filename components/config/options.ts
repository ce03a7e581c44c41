/** How `buildModel` runs: what it may read and check, and when "now" is. */
export interface BuildOptions {
    /** Check provided PEM material (off where secrets cannot be decrypted, e.g. `npm run envoy-config`). */
    checkSecretMaterial: boolean;
    now: Date;
    /** Where relative `tls.directory` / `tls.files.*` paths start; default: the working directory (the project's, under Pulumi). */
    baseDirectory?: string;
}
