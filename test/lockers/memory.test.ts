import { MemoryLocker } from '../../src/lockers/memory.js';
import { lockerConformance } from './conformance.js';

lockerConformance('memory', () => new MemoryLocker());
