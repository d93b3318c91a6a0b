// The Anthropic API key in VS Code: kept in SecretStorage (the OS keychain), asked for once, and
// handed to the running container's tmpfs on demand (src/core/host/codingAgent.ts), never to a setting.
import * as vscode from 'vscode';
import { validateApiKey } from '../core/host/codingAgent';

export const API_KEY_SECRET = 'clud.anthropicApiKey';

/** Asks for the key and stores it; undefined when the user cancels. */
export async function promptForApiKey(secrets: vscode.SecretStorage): Promise<string | undefined> {
  const entered = await vscode.window.showInputBox({
    title: 'Clud: Anthropic API key for Claude Code',
    prompt: 'Kept in VS Code\'s secret storage and given only to Claude Code inside the workspace container.',
    password: true,
    ignoreFocusOut: true,
    validateInput: (value) => {
      try {
        validateApiKey(value);
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    },
  });
  if (entered === undefined) return undefined;
  const key = validateApiKey(entered);
  await secrets.store(API_KEY_SECRET, key);
  return key;
}

/** The stored key, or the user's answer to the prompt when there is none. */
export async function apiKeyOrPrompt(secrets: vscode.SecretStorage): Promise<string | undefined> {
  return (await secrets.get(API_KEY_SECRET)) ?? (await promptForApiKey(secrets));
}
