import { deploy, loadModel } from "./components/program";

// Validate the whole configuration first: a bad value stops the run before any resource is registered.
const outputs = deploy(loadModel());

export const querierFlags = outputs.querierFlags;
export const endpointSdFile = outputs.endpointSdFile;
export const clusters = outputs.clusters;
export const querierMounts = outputs.querierMounts;
export const caCertificate = outputs.caCertificate;
export const clientCertificate = outputs.clientCertificate;
export const clientPrivateKey = outputs.clientPrivateKey;
export const renderDirectory = outputs.renderDirectory;
