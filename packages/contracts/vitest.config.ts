import { defineProject } from 'vitest/config';
import { projectTest, sourceResolution } from '../../vitest.shared.ts';

export default defineProject({ ...sourceResolution, test: projectTest('contracts', { services: false }) });
