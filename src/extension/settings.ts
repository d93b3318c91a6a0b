// `clud.*` settings, validated by the same zod schema the CLI uses; a bad value is reported by
// its setting name ("clud.imageTag"), never as a stack trace.
import * as vscode from 'vscode';
import { parseConfig } from '../core/host/config';
import type { CludConfig } from '../core/host/config';
import { POLICIES } from '../core/sync/reconcile';
import type { Policy } from '../core/sync/reconcile';
import { CludError } from '../core/errors';
import type { AutoSyncMode } from '../core/protocol';

export interface ExtensionSettings {
  config: CludConfig;
  syncPolicy: Policy;
  /** `clud.autoSync`; when only the older `clud.autoSyncOnSave` is set: false is off, true is on-save. */
  autoSync: AutoSyncMode;
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
      autoSync: autoSyncSetting(settings),
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
  return { config, syncPolicy, autoSync: config.autoSync ?? 'continuous' };
}

/**
 * `clud.autoSync` where the user set it; else what the replaced boolean `clud.autoSyncOnSave`
 * meant where they set that (false: off, true: on-save); else undefined (continuous).
 */
function autoSyncSetting(settings: vscode.WorkspaceConfiguration): unknown {
  const explicit = (key: string) => {
    const inspected = settings.inspect(key);
    return inspected?.workspaceFolderValue ?? inspected?.workspaceValue ?? inspected?.globalValue;
  };
  const mode = explicit('autoSync');
  if (mode !== undefined) return mode;
  const onSave = explicit('autoSyncOnSave');
  return onSave === false ? 'off' : onSave === true ? 'on-save' : undefined;
}
