// docker-modem loads ssh2 at start-up for ssh:// Docker hosts. Clud talks to a local socket or
// TCP host only, so the bundles get this stand-in instead of ssh2 and its native parts.
export class Client {
  constructor() {
    throw new Error('Docker hosts over ssh:// are not supported by Clud; use a local socket or tcp:// DOCKER_HOST');
  }
}
