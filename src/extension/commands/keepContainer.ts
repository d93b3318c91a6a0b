import { keepVersion } from './keepVersion';

export const keepContainer = keepVersion('clud.keepContainer', 'container');
