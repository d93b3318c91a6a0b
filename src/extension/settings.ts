// `clud.*` settings, validated by the same zod schema the CLI uses; a bad value is reported by
// its setting name ("clud.imageTag"), never as a stack trace.
import * as vscode from 'vscode';
import { parseConfig } from '../core/config';
import type { CludConfig } from '../core/config';
import { POLICIES } from '../core/sync/reconcile';
import type { Policy } from '../core/sync/reconcile';
import { CludError } from '../core/errors';

export interface ExtensionSettings {
  config: CludConfig;
  syncPolicy: Policy;
}

export function readSettings(scope?: vscode.ConfigurationScope): ExtensionSettings {
  const settings = vscode.workspace.getConfiguration('clud', scope);
  const text = (key: string) => {
    const value = settings.get<string>(key);
    return value === undefined || value === '' ? undefined : value;
  };
  const config = parseConfig(
    {
      containerName: text('containerName'),
      imageTag: text('imageTag'),
      baseImage: text('baseImage'),
      extraCaCertificates: settings.get('extraCaCertificates'),
      excludes: settings.get('excludes'),
      allowSecrets: settings.get('allowSecrets'),
      syncRetries: settings.get('syncRetries'),
      autoSyncOnSave: settings.get('autoSyncOnSave'),
      undoMaxSteps: settings.get('undoMaxSteps'),
      undoMaxLogMegabytes: settings.get('undoMaxLogMegabytes'),
      undoMaxStepMegabytes: settings.get('undoMaxStepMegabytes'),
      safeguardMaxDeletions: settings.get('safeguardMaxDeletions'),
      safeguardLargeFileMegabytes: settings.get('safeguardLargeFileMegabytes'),
      ui: settings.get('ui'),
      uiPort: settings.get<number | null>('uiPort') ?? undefined,
      mcpServers: settings.get('mcpServers'),
    },
    (key) => `clud.${key}`,
  );
  const syncPolicy = (settings.get<string>('syncPolicy') ?? 'two-way-safe') as Policy;
  if (!POLICIES.includes(syncPolicy)) throw new CludError('invalid-config', `Invalid setting clud.syncPolicy: must be one of ${POLICIES.join(', ')}`);
  return { config, syncPolicy };
}
