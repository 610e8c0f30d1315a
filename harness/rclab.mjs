#!/usr/bin/env node
// rclab's entry point: registers the TypeScript loader (tsx), then runs the command line.
import { register } from 'tsx/esm/api';
register();
await import('./cli.ts');
