// Replaced at bundle time would be nicer; the package version is enough to tell agents apart in logs.
export const AGENT_VERSION = '0.1.0';
