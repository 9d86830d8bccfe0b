import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const driverRule = (allowed) => ({
  'no-restricted-imports': [
    'error',
    {
      paths: [
        ...(allowed.includes('esdb')
          ? []
          : [
              {
                name: '@eventstore/db-client',
                message: 'Only src/eventStore/esdb/ may import the EventStoreDB client.',
              },
            ]),
        ...(allowed.includes('postgres')
          ? []
          : [{ name: 'pg', message: 'Only src/eventStore/postgres/ may import the PostgreSQL driver.' }]),
        ...(allowed.includes('sqlite')
          ? []
          : [
              {
                name: 'better-sqlite3',
                message:
                  'Only src/eventStore/sqlite/, src/projections/db.ts and src/projections/writerThread.ts may import better-sqlite3.',
              },
            ]),
      ],
    },
  ],
});

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist-*/**',
      'node_modules/**',
      'swf-data/**',
      'test-artifacts/**',
      'src/monitor/public/vendor/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      'no-console': 'error',
    },
  },
  { files: ['src/**/*.ts'], rules: driverRule([]) },
  { files: ['src/eventStore/esdb/**/*.ts'], rules: driverRule(['esdb']) },
  {
    files: ['src/eventStore/sqlite/**/*.ts', 'src/projections/db.ts', 'src/projections/writerThread.ts'],
    rules: driverRule(['sqlite']),
  },
  { files: ['src/eventStore/postgres/**/*.ts'], rules: driverRule(['postgres']) },
  { files: ['src/cli/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts'], rules: { 'no-console': 'off' } },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
  {
    // The monitor's page: plain browser scripts, no build step.
    files: ['src/monitor/public/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'script',
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        fetch: 'readonly',
        EventSource: 'readonly',
        URLSearchParams: 'readonly',
        FormData: 'readonly',
        Event: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
      },
    },
  },
  {
    // Child processes of the tests, run by plain Node on the built package.
    files: ['test/fixtures/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', setTimeout: 'readonly', console: 'readonly' },
    },
  },
);
