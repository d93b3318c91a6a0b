import { keepVersion } from './keepVersion';

export const keepHost = keepVersion('clud.keepHost', 'host');
