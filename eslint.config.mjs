// ESLint: TypeScript's type-aware rules plus Pulumi's (an Output inside a template literal is a bug).
import js from "@eslint/js";
import pulumi from "@pulumi/eslint-plugin";
import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["node_modules/", "bin/", "rendered/", ".venv/", "policy/", "tools/pulumi-offline/"] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        files: ["**/*.ts"],
        languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
        plugins: { "@pulumi": pulumi },
        rules: {
            "@pulumi/no-output-in-template-literal": "error",
            "@pulumi/no-output-instance-in-template-literal": "error",
            "@typescript-eslint/no-floating-promises": "error",
        },
    },
    {
        // Tests and tools read untyped JSON (Envoy stats, mock inputs) and load CommonJS lazily after mocks.
        files: ["test/**/*.ts", "bench/**/*.ts"],
        // node:test's describe/it return promises the runner awaits itself.
        rules: {
            "@typescript-eslint/no-explicit-any": "off",
            "@typescript-eslint/no-require-imports": "off",
            "@typescript-eslint/no-floating-promises": "off",
        },
    },
);
