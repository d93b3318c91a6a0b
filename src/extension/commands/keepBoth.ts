import { keepVersion } from './keepVersion';

export const keepBoth = keepVersion('clud.keepBoth', 'both');
