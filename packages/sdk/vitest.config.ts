import { defineProject } from 'vitest/config';
import { projectTest } from '../../vitest.shared.ts';

export default defineProject({ test: projectTest('sdk', { services: true }) });
